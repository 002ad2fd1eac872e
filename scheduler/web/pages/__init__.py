"""One module per page of the web view; each gives an APIRouter."""
