"""The language of the Kết luận and of the questions about them, in one place, with word lists as data files.

agencies.py (names, aliases, levels), references.py (document numbers), dates.py (dates and deadlines),
questions.py (abbreviations, spoken forms, question words, stopwords) — each reads its lists from data/.
"""
