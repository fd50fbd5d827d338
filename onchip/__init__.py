"""metaloihi.onchip"""
