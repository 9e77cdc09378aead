"""`python -m gateway`: serve on $HOST:$PORT."""

from gateway import create_app

create_app().main()
