"""Customers, companies, sales pipeline, activities, segments, lead capture and scoring."""
