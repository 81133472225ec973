"""Contracts and plumbing shared by Duban's services: no business rules live here."""
