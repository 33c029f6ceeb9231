"""Parse + PCR replay of the whole TCG corpus, per backend.

pytest-benchmark reports the time for the corpus; extra_info has ms per log.
"""

import json

from fastrim.log import pcr, tcg


def test_parse_and_replay_tcg_corpus(benchmark, impl, corpus):
    expected = json.loads((corpus / "tcg/EXPECTED.json").read_text())["logs"]
    logs = [(corpus / "tcg" / name).read_bytes() for name, want in sorted(expected.items()) if want["expect"] == "ok"]

    def run():
        for data in logs:
            pcr.replay_pcrs(tcg.parse(data, impl=impl))

    benchmark(run)
    benchmark.extra_info["logs"] = len(logs)
    benchmark.extra_info["ms_per_log"] = benchmark.stats.stats.mean * 1000 / len(logs) if benchmark.stats else None
