"""The CodeDeploy 2014-10-06 operations, one module per resource, registered in ``registry``."""
