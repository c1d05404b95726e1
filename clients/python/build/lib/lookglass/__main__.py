from lookglass.cli import main

raise SystemExit(main())
