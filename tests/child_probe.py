"""A child for tests/voicetweets/test_children.py: reports the limits it runs under, or
allocates past them (``--allocate N`` bytes), or never ends (``--spin``)."""

import argparse
import json
import resource
import sys

from voicetweets.children import enter_child


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--allocate", type=int, default=0)
    parser.add_argument("--spin", action="store_true", help="never end")
    args = enter_child(parser, argv)
    while args.spin:
        pass
    if args.allocate:
        bytearray(args.allocate)
    print(
        json.dumps(
            {
                "memory": resource.getrlimit(resource.RLIMIT_AS)[0],
                "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
