"""`python -m dfgraph` runs the command line."""

from dfgraph.cli import main

raise SystemExit(main())
