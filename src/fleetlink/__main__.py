from fleetlink.cli import main

main()
