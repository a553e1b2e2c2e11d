"""`python -m vsr`: as the `vsr` console script, with a Ctrl-C during the first import ending quietly too."""

try:
    from vsr.launch import main
except KeyboardInterrupt:
    raise SystemExit(130) from None

main()
