"""The law as data: leak facts, legal figures, the assessment and its report. Pure: no database."""
