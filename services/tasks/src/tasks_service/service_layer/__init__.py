"""Use cases of the tasks service: what a request means, free of HTTP and of MongoDB."""
