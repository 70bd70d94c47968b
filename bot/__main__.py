"""`python -m bot`: the command line (`bot.terminal.cli`); with no command it runs the bot."""

from bot.terminal.cli import main

raise SystemExit(main())
