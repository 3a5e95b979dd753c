"""The HTTP edge shared by every router: dependencies, error handlers, middleware."""
