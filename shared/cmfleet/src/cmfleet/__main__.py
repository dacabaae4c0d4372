from cmfleet.cli import main

main()
