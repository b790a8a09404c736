from workbench.dashboard.models import page

page()
