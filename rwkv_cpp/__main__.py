"""`python -m rwkv_cpp` runs the rwkv-cpp command line."""

import sys

from .cli import main

sys.exit(main())
