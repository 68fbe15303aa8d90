"""A child for ``test_a_child_may_answer_with_a_line_of_megabytes``: one JSON line of 4 MB, then exit."""

import json

print(json.dumps({"samples": "x" * 4_000_000}), flush=True)
