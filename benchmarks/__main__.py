"""``python -m benchmarks`` runs the benchmark (:mod:`benchmarks.run`); ``... report`` renders one;
``... lipsync`` measures sound against picture (:mod:`benchmarks.lipsync`)."""

import sys

if sys.argv[1:2] == ["lipsync"]:
    from benchmarks.lipsync import main as lipsync_main

    sys.exit(lipsync_main(sys.argv[2:]))

if sys.argv[1:2] == ["report"]:
    from benchmarks.report import main as report_main

    sys.exit(report_main(sys.argv[2:]))

from benchmarks.run import main

sys.exit(main())
