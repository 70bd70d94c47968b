"""`python -m fakes.discord`: the fake Discord in its own process (see `fakes.discord.process`)."""

from fakes.discord.process import main

raise SystemExit(main())
