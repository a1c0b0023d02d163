def read_static(root): raise NotImplementedError
