from mltrl_operator.cli import main

raise SystemExit(main())
