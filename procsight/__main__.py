from procsight.cli import main

raise SystemExit(main())
