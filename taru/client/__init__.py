"""
C{taru-cli}, Taru's command-line client: it lists tasks, runs them with
arguments while their output streams to standard output, stops them, shows
their runs and follows Taru's events, all through the HTTP API.

A command goes one way through these modules: L{taru.client.options} reads
the command line into an L{Invocation <taru.client.options.Invocation>};
L{taru.client.commands} carries it out with the requests of
L{taru.client.http}, reading run records (L{taru.client.records}) and events
(L{taru.client.events}), and shows the answers as text
(L{taru.client.formatting}) on the terminal (L{taru.client.console}).
L{taru.client.interruptions} gives a command up on a signal, and
L{taru.client.main} is the program itself. L{taru.client.exits} lists the
exit statuses and the failures behind them.
"""
