"""`python -m mltrl_operator.cli.kubectl_mltrl`: what the krew launcher runs."""

import sys

from mltrl_operator.cli.kubectl_mltrl import main

sys.exit(main())
