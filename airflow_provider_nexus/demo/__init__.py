"""Synthetic demo data: four messy sources describing one population of people and companies.

See :mod:`airflow_provider_nexus.demo.generator` (``DemoSpec``, ``write_batch``, ``write_all``).
"""
