"""List every registered estimator with its paper."""

from tfcvr.layers.backbones import BACKBONES
from tfcvr.models import ESTIMATORS


def add_arguments(parser):
    parser.add_argument("--backbones", action="store_true", help="also list the backbones")


def run(args):
    width = max(len(name) for name in ESTIMATORS)
    for name in sorted(ESTIMATORS):
        cls = ESTIMATORS[name]
        print(f"{name:<{width}}  {cls.__name__:<12}  {cls.paper}")
    if args.backbones:
        print()
        for name in sorted(BACKBONES):
            print(f"backbone {name:<14} {BACKBONES[name].__name__}")
    return 0
