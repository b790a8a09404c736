from workbench.dashboard.compare import page

page()
