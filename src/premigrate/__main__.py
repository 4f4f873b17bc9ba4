from premigrate.cli import main

raise SystemExit(main())
