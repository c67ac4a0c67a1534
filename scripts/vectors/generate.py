#!/usr/bin/env python3
"""Produce signature test vectors with the providers' official SDKs.

Every module `<name>_vectors.py` next to this file (one per provider) has
`generate() -> (provider, sdk_description, cases)`. The suffix keeps a module
from shadowing the SDK package of the same name. Each case is signed
by the provider's SDK where the SDK can sign; otherwise it is signed by the
documented scheme and the SDK's verifier gives the verdict. payhook's tests
then expect payhook to give the SDK's verdict on every case.

Run through `scripts/gen-vectors`, which installs the pinned SDKs listed in
`scripts/vectors/*.requirements.txt` into a throwaway virtualenv.
"""
import importlib
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import _common  # noqa: E402


def main(only: list) -> None:
    here = pathlib.Path(__file__).parent
    modules = sorted(p.stem.removesuffix("_vectors") for p in here.glob("*_vectors.py"))
    for name in modules:
        if only and name not in only:
            continue
        provider, sdk, cases = importlib.import_module(f"{name}_vectors").generate()
        path = _common.write(provider, sdk, cases)
        valid = sum(c["valid"] for c in cases)
        print(f"{path.relative_to(_common.ROOT)}: {len(cases)} cases, {valid} valid ({sdk})")


if __name__ == "__main__":
    main(sys.argv[1:])
