"""The installed room display's launcher: Briefcase runs ``python -m coalesce_room``."""
