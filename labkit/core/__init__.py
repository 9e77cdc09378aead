"""Plumbing shared by every component: paths, HTTP serving and auth, errors,
the on-disk store, process supervision and logs. Never imports a component."""
