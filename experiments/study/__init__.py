"""The reproduction study's wing: sections of docs/reproduction.md built from the kept records
(`plan`: the jobs; `records`: reading and keeping them; `paper`, `frontier`, `endpoints`: the
page's parts; `figures`; `page`: docs/reproduction.md assembled; `queue`: the driver's job queue)."""
