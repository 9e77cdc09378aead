"""`python -m orders`: serve on $HOST:$PORT."""

from orders import create_app

create_app().main()
