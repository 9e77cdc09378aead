"""`python -m catalog`: serve on $HOST:$PORT."""

from catalog import create_app

create_app().main()
