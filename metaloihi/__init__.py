"""metaloihi: meta-trained spiking networks on Intel Loihi 2 through Lava.

Subpackages: ``sim`` (Loihi 2 neuron model, float and bit-exact), ``datasets`` (event data and
few-shot tasks), ``offline`` (MAML meta-training), ``bridge`` (quantisation, bundles, Lava graph),
``onchip`` (error-triggered learning in Lava). Lava is imported only by bridge/onchip, lazily.
"""
__version__ = "0.1.0"
