from echosclero.cli import main

raise SystemExit(main())
