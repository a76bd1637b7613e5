"""HTML reports and tables from run folders (they read only the result files)."""
