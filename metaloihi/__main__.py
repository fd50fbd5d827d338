from metaloihi.cli import main

main()
