"""SQLite storage: the Database object, migrations, and one module of SQL per resource."""
