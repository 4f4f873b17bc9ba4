from premigrate.cli import run

run()
