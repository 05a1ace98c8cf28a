"""Readers of the Ali-CCP family of fixed log formats.

They build their own input spec (from the format, or the header of the
files), so the job needs no `--spec` for them:

- `ReadAliCCP` (`--format aliccp`): the raw Tianchi logs, impressions
  joined to their common features (and to the simulator's ground truth);
- `ReadAliCCPCsv` (`aliccp_csv`): torch-rechub's preprocessed Ali-CCP CSVs;
- `ReadAliExpressCsv` (`aliexpress`): the AliExpress CSVs;
- `ReadPaddleRec` (`paddlerec`): the lines of PaddleRec's ESMM examples.

`fields` parses and formats the `field\\x02id\\x03value` feature lists;
`fixed_format_reader` is the base the readers share.
"""

from beam_jobs.readers.aliccp.header_csv import ReadAliCCPCsv
from beam_jobs.readers.aliccp.header_csv import ReadAliExpressCsv
from beam_jobs.readers.aliccp.paddlerec import ReadPaddleRec
from beam_jobs.readers.aliccp.raw_logs import ReadAliCCP

__all__ = ["ReadAliCCP", "ReadAliCCPCsv", "ReadAliExpressCsv", "ReadPaddleRec"]
