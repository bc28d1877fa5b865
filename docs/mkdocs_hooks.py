"""MkDocs hook: the benchmark records of `benchmarks/results/` in the site.

The pages link the records as `../benchmarks/results/NAME`, which works
where Markdown is read in place (a checkout, a code browser).  The records
live outside `docs/`, so the site takes them in under `results/` (as pages
outside the nav) and the links are pointed there; `mkdocs build --strict`
then checks them like any other link.  The records are shown as they are.
"""

import os
import re

from mkdocs.structure.files import File, InclusionLevel

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
LINK = re.compile(r"\]\(\.\./benchmarks/results/")


def on_files(files, config):
    for name in sorted(os.listdir(os.path.join(BENCHMARKS, "results"))):
        if os.path.isfile(os.path.join(BENCHMARKS, "results", name)):
            files.append(File(f"results/{name}", BENCHMARKS, config["site_dir"], config["use_directory_urls"],
                              inclusion=InclusionLevel.NOT_IN_NAV))
    return files


def on_page_markdown(markdown, page, config, files):
    return LINK.sub("](results/", markdown)
