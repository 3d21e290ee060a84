"""Test infrastructure: random RWKV checkpoints (`checkpoints`) and BlinkDL's reference
implementation run on them (`oracle`, which drives `run_oracle.py` in subprocesses).

Importing the package itself does not import torch; its submodules do.
"""

# Arch names follow rwkv.cpp: "5.1" is RWKV-5 with `ln_x` and no gate, "5.2" has the gate.
ARCHS = ("4", "5.1", "5.2", "6", "7")

# The version `rwkv.model.RWKV` detects for each arch (it calls rwkv.cpp's 5.1 "5.0").
REFERENCE_VERSION = {"4": 4.0, "5.1": 5.0, "5.2": 5.2, "6": 6.0, "7": 7.0}
