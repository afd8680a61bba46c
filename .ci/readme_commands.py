"""Print the README's quick-start commands, one per line (for .ci/run)."""

import re
import sys
from pathlib import Path

text = Path(sys.argv[1]).read_text()
block = re.search(r"```bash\n(.*?)```", text, re.S)
if block is None:
    sys.exit("README.md has no ```bash block")
for line in block.group(1).splitlines():
    if line.strip() and not line.lstrip().startswith("#"):
        print(line.strip())
