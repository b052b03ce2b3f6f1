# Models arrive with the spaces issue.
