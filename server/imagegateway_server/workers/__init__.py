"""``imagegw serve --workers N``: N gateway processes on the same ports, under one supervisor."""
