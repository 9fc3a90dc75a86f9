from auditkit.cli import main

main()
