"""The hub kernel: app factory, settings, database, auth, tenancy, events, sockets, tasks, i18n."""
