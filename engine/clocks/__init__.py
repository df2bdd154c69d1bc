"""Legal time: durations, working-day calendars, deadline rules and their planning. Pure: no database."""
