"""All of kitsync's HTTP: the partner clients, over shared auth, retries, pagination and errors."""
