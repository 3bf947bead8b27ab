class Cart:
    def __init__(self, request):
        self.request = request
