"""What devices need of the Coalesce cloud: REST client, stored credentials, TURN choice, updates."""
